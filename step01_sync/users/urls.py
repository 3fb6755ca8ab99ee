from django.urls import path

from . import views

urlpatterns = [
    path("sms/<mobile>/", views.SMSCodeAPIView.as_view()),
]
