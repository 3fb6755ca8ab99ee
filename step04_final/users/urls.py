from django.urls import path

from . import views

urlpatterns = [
    path("sms/verify/", views.SMSCodeVerifyAPIView.as_view()),
    path("sms/<mobile>/", views.SMSCodeAPIView.as_view()),
]
